# signalpost: `docker build -t signalpost .` from the repository's root (see docs/deployment.md).
# Build stage: the project and its dependencies installed into a virtual environment.
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/signalpost
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/signalpost/bin/pip install --upgrade pip \
    && /opt/signalpost/bin/pip install .

# Runtime stage: the environment alone, run by an unprivileged user.
FROM python:3.12-slim
RUN useradd --system --create-home --home-dir /home/signalpost signalpost \
    && mkdir /data && chown signalpost /data
COPY --from=build /opt/signalpost /opt/signalpost
ENV PATH=/opt/signalpost/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SIGNALPOST_HOST=0.0.0.0 \
    SIGNALPOST_PORT=8080
USER signalpost
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SIGNALPOST_PORT', '8080') + '/healthz', timeout=2)" || exit 1
ENTRYPOINT ["signalpost"]
CMD ["serve"]
