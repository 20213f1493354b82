FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY booking booking
COPY gateway gateway
COPY workers workers
COPY lua lua
COPY common common
COPY stack stack
RUN pip install --no-cache-dir .
