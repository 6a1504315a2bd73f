# escalator worker image. Build: docker build -t escalator .
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY examples ./examples
RUN pip install --no-cache-dir . && useradd --system --uid 10001 escalator \
    && mkdir -p /var/lib/escalator && chown escalator /var/lib/escalator
USER escalator
ENV ESCALATOR_DATA_DIR=/var/lib/escalator \
    ESCALATOR_WEB_BIND=0.0.0.0 \
    ESCALATOR_LOG_FORMAT=json
EXPOSE 6066
ENTRYPOINT ["escalator"]
CMD ["worker"]
