# One image for both servers: the same editable-free install the README's `make run` performs (pip install .).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY mediadl ./mediadl
COPY mediadl_common ./mediadl_common
COPY auth_server ./auth_server
COPY download_server ./download_server
COPY clients ./clients
COPY dashboard ./dashboard
RUN pip install . && useradd --create-home --uid 10001 mediadl && mkdir -p /data /storage && chown mediadl /data /storage

USER mediadl
ENV STORAGE_DIR=/storage
# docker-compose.yml chooses the server: `python -m auth_server` or `python -m download_server`.
CMD ["python", "-m", "auth_server"]
