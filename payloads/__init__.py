"""The bytes on the wire: TF Serving's REST JSON rules and every request body tfsbench sends.

Modules, bottom up: `errors` (InputError), `signature` (model metadata and signatures), `codec` (encode
and decode predict requests and responses, TF Serving's error texts), `spec` (PayloadSpec), `generators`
(seeded text/image/numeric/auto tensors), `sizes` (raw/wire/b64/gzip accounting), `pool` (pre-encoded
bodies), `metadata_fetch` (GET .../metadata over urllib). Imports numpy, orjson and Pillow only.
"""
