"""sipassist.station: weather-station drivers over pyserial, one module per protocol."""
