"""CALC: arithmetic parsed with `ast` and evaluated by a small whitelist; never eval()."""

from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any

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
_FUNCTIONS = {"sqrt": math.sqrt, "abs": abs, "round": round}
# Spoken arithmetic, as Whisper writes it, to symbols.
_WORDS = [
    (r"\bdivided by\b", "/"), (r"\bover\b", "/"), (r"\btimes\b", "*"), (r"\bmultiplied by\b", "*"),
    (r"\bplus\b", "+"), (r"\bminus\b", "-"), (r"\bto the power of\b", "**"),
    (r"\bsquared\b", "**2"), (r"\bcubed\b", "**3"), (r"\bmod(ulo)?\b", "%"),
    (r"(?<=\d)\s*[x×]\s*(?=\d)", "*"), (r"÷", "/"), (r"\^", "**"), (r"(?<=\d),(?=\d{3})", ""),
]


class CalcError(ValueError):
    pass


def normalise(expression: str) -> str:
    text = expression.lower().strip().rstrip("?.!")
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
    raise CalcError("only numbers, + - * / // % **, parentheses, sqrt, abs and round are allowed")


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
