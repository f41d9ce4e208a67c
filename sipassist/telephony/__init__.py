"""sipassist.telephony: baresip, jackd, ctrl_tcp and the JACK audio bridge."""
