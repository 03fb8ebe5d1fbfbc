"""Caption text: tokenisation, the BiGRU vocabulary and AMFMN's prior caption similarity.

Kept import-free; import ``core.text.vocab`` or ``core.text.prior`` directly.
"""
