# BIZRA NODE-0 as a container.
#
#   docker build -t bizra-node .
#   docker run -v bizra:/data -p 127.0.0.1:8080:8080 -p 26656:26656 bizra-node      # a local chain
#   docker run -v bizra:/data -p 127.0.0.1:8080:8080 -p 26656:26656 bizra-node start --network bizra-testnet-001
#
# RPC listens on every interface inside the container, so publish it on the host's
# loopback (127.0.0.1:8080) unless it is meant for other machines; then publish it on
# purpose, -p 0.0.0.0:8080:8080, and know that admin methods need the token in
# /data/rpc_token. The p2p port 26656 is public: peers must reach it.
#
# The builder stage builds the wheels (the node's, its hot modules compiled with
# mypyc, and those of dependencies that need a compiler: fastecdsa needs GMP); the
# runtime stage installs them into a slim image and runs the node as a user without
# privileges. The home is the volume /data. `docker stop` sends SIGTERM, which the node
# (PID 1, the exec form below) turns into a clean stop.

FROM python:3.11-slim-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libgmp-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY chain ./chain
COPY consensus ./consensus
COPY storage ./storage
COPY p2p ./p2p
COPY node ./node
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgmp10 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home bizra \
    && mkdir /data && chown bizra:bizra /data
COPY --from=builder /wheels /wheels
RUN python -m pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels \
    && bizra-node version --require-compiled
USER bizra
# The home, and RPC on every interface of the container (it is 127.0.0.1 on a host; the
# host decides who reaches it when it publishes the port, see above).
ENV BIZRA_HOME=/data BIZRA_RPC_HOST=0.0.0.0 PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8080 26656
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["bizra-node"]
CMD ["start"]
