"""Domain biasing: the words the tools care about, given to Whisper as its initial prompt.

Whisper reads the prompt as text said just before the utterance, so words in it (weather terms,
units, number words, city names, the timer's vocabulary) win over look-alikes on a noisy
8 kHz line ("humid" over "human", "squared" over "square", "Tokyo" over "Tokio"), and its
style ("25", "15%") becomes the style of the transcript. It is built from the tools' own
vocabulary (the places DATETIME knows, the words intents and calc read), so it follows them.
Measured with and without by `sipassist bench asr --set` (README).
"""

from __future__ import annotations

from .intents import PLACES

# Cities said most often, first: the prompt keeps to Whisper's 223-token limit. Not Dubai:
# with it in the prompt, "Thanks, goodbye." was heard as "Thanks, Dubai." (bench asr --set).
_CITIES = ("Tokyo", "London", "New York", "Paris", "Sydney", "Berlin", "Los Angeles",
           "Chicago", "Singapore", "Hong Kong", "Moscow", "Seattle", "Denver")


def tool_prompt() -> str:
    """The initial prompt: the tools' words, with no whole request and no number in it.

    Example requests ("What's 25 times 4 plus 10?") were tried first: Whisper then completed
    a cut-off or garbled utterance into the example itself, a confident wrong command.
    """
    cities = [city for city in _CITIES if city.lower() in PLACES]
    return (
        "Weather, temperature, hot, cold, warm, humidity, humid, wind speed, windy, rain, "
        "raining, degrees. "
        "Time in " + ", ".join(cities) + ". Date, day, today. "
        "Add, plus, minus, times, divided by, multiplied by, percent, squared, cubed, "
        "square root. "
        "Timer, reminder, remind me, seconds, minutes, hours, half, quarter. "
        "Goodbye."
    )
