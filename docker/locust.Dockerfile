# Locust with what tfsbench's Locust users import (payload pools, codec, result schema), nothing more.
# The repository is mounted at /mnt/tfsbench (see compose.yaml), so edits need no rebuild.
FROM locustio/locust:2.47.0
RUN pip install --no-cache-dir "numpy>=1.26" "orjson>=3.9" "Pillow>=10.0" "hdrhistogram>=0.10"
ENV PYTHONPATH=/mnt/tfsbench
