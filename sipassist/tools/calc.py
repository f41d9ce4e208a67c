"""CALC: arithmetic parsed with `ast` and evaluated by a small whitelist; never eval()."""

from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any

from ..voice.numbers import words_to_digits
from .base import Parameter, ToolResult

MAX_EXPRESSION = 200
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e100

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {"sqrt": math.sqrt, "cbrt": math.cbrt, "abs": abs, "round": round}
_NUM = r"(-?\d+(?:\.\d+)?)"
# Spoken arithmetic, as Whisper writes it, to symbols; in order (phrases before their words).
_WORDS = [
    (r"(?<=\d)%", " percent"), (r"\bper cent\b", "percent"),  # "17 % 5" stays modulo
    (rf"{_NUM} percent (?:off|discount on|discount off|less than) {_NUM}", r"(\2 * (1 - \1 / 100))"),
    (rf"{_NUM} percent (?:of|on|from) {_NUM}", r"(\1 / 100 * \2)"),
    (rf"{_NUM} (?:plus|\+|and) {_NUM} percent", r"(\1 * (1 + \2 / 100))"),
    (rf"{_NUM} (?:minus|-|less) {_NUM} percent", r"(\1 * (1 - \2 / 100))"),
    (rf"\b(?:the )?square root of {_NUM}", r"sqrt(\1)"),
    (rf"\b(?:the )?cube root of {_NUM}", r"cbrt(\1)"),
    (rf"\b(?:the )?(\d+)(?:st|nd|rd|th) root of {_NUM}", r"(\2 ** (1 / \1))"),
    (rf"\badd {_NUM} (?:and|to|plus) {_NUM}", r"(\1 + \2)"),
    (rf"\b(?:the )?sum of {_NUM} and {_NUM}", r"(\1 + \2)"),
    (rf"\bsubtract {_NUM} from {_NUM}", r"(\2 - \1)"),
    (rf"\btake (?:away )?{_NUM} (?:away )?from {_NUM}", r"(\2 - \1)"),
    (rf"\b(?:the )?difference between {_NUM} and {_NUM}", r"(\1 - \2)"),
    (rf"\bmultiply {_NUM} (?:by|and|times) {_NUM}", r"(\1 * \2)"),
    (rf"\b(?:the )?product of {_NUM} and {_NUM}", r"(\1 * \2)"),
    (rf"\bdivide {_NUM} (?:by|into) {_NUM}", r"(\1 / \2)"),
    (rf"\b(?:double|twice) {_NUM}", r"(2 * \1)"), (rf"\btriple {_NUM}", r"(3 * \1)"),
    (rf"{_NUM} (?:lots of|of) {_NUM}", r"(\1 * \2)"),  # "half of 50", "3 lots of 7"
    (r"\bdivided by\b", "/"), (r"\bover\b", "/"), (r"\btimes\b", "*"),
    (r"\bmultiplied by\b", "*"), (r"\bplus\b", "+"), (r"\bminus\b|\bnegative\b", "-"),
    # Powers only after a number or a bracket: "squared, cubed" alone is no sum.
    (r"(?<=[\d)]) (?:to the power of|raised to the power of|raised to|to the power)\b", " **"),
    (r"(?<=[\d)]) to the (\d+)(?:st|nd|rd|th)(?: power)?\b", r" ** \1"),
    (r"(?<=[\d)]) squared\b", " ** 2"), (r"(?<=[\d)]) cubed\b", " ** 3"),
    (r"\bmod(?:ulo)?\b", "%"),
    (r"(?<=\d)\s*[x×]\s*(?=[\d(])", " * "), (r"÷", "/"), (r"\^", "**"),
]


class CalcError(ValueError):
    pass


def normalise(expression: str) -> str:
    """Symbols for a spoken expression: "15 percent of two hundred" -> "(15 / 100 * 200)"."""
    text = words_to_digits(expression.strip().rstrip("?.!"))
    text = re.sub(r"\s+", " ", text)
    for pattern, symbol in _WORDS:
        text = re.sub(pattern, symbol, text)
    return text


def evaluate(expression: str) -> int | float:
    if len(expression) > MAX_EXPRESSION:
        raise CalcError(f"the expression is longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(normalise(expression), mode="eval")
    except SyntaxError:
        raise CalcError(f"'{expression}' is not an arithmetic expression") from None
    value = _eval(tree.body)
    if isinstance(value, float) and math.isfinite(value):
        value = float(f"{value:.12g}")  # cbrt(27) is 3.0000000000000004, 0.1 + 0.2 too
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value) or abs(value) > MAX_MAGNITUDE:
            raise CalcError("the result is too large")
        if value.is_integer():
            return int(value)
    elif abs(value) > MAX_MAGNITUDE:
        raise CalcError("the result is too large")
    return value


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or (
                abs(left) > 1 and abs(right) * math.log10(abs(left)) > 100)):
            raise CalcError("the exponent is too large")
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
            raise CalcError("division by zero")
        return _BINARY[type(node.op)](left, right)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS and len(node.args) == 1 and not node.keywords):
        argument = _eval(node.args[0])
        if node.func.id == "sqrt" and argument < 0:
            raise CalcError("the square root of a negative number")
        return _FUNCTIONS[node.func.id](argument)
    raise CalcError("only numbers, + - * / // % **, parentheses, sqrt, cbrt, abs and round "
                    "are allowed")


def spoken_number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}"


class CalcTool:
    name = "CALC"
    description = "Calculate an arithmetic expression"
    parameters = (Parameter("expression", "string", True, "for example 25 * 4 + 10"),)
    enabled = True

    def execute(self, params: dict[str, Any]) -> ToolResult:
        try:
            result = evaluate(params["expression"])
        except CalcError as exc:
            return ToolResult.failure(str(exc), f"Sorry, I can't calculate that: {exc}.")
        return ToolResult(True, f"The result is {spoken_number(result)}", {"result": result})
