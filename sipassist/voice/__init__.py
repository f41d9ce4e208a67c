"""sipassist.voice: speech synthesis, recognition and audio helpers."""
