FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY booking booking
COPY gateway gateway
COPY workers workers
COPY lua lua
COPY common common
COPY stack stack
# The OTLP exporter is what OTEL_EXPORTER_OTLP_ENDPOINT (set by docker-compose) needs; tracing
# stays off without it.
RUN pip install --no-cache-dir . "opentelemetry-exporter-otlp-proto-http>=1.25"
EXPOSE 8080 8081 9100
