FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY booking booking
COPY gateway gateway
COPY workers workers
COPY lua lua
COPY common common
# The pages the gateway serves at / (static files; WEB_ROOT says where they are).
COPY web web
ENV WEB_ROOT=/app/web
# Neither stack/ (the launcher of `make run`'s embedded servers) nor the `local` extra (their
# wheels): docker-compose.yml runs Redis, PostgreSQL and Redpanda as services of their own, and no
# module of booking, gateway, workers, common or lua imports stack/ or those wheels. Versions come
# from requirements.lock, as in development. The OTLP exporter is what
# OTEL_EXPORTER_OTLP_ENDPOINT (set by docker-compose) needs; tracing stays off without it.
RUN pip install --no-cache-dir -c requirements.lock . "opentelemetry-exporter-otlp-proto-http>=1.25"
EXPOSE 8080 8081 9100
