# An Enigma node as a container (docs/node.md, "The image").
#
#   podman build --format docker -t enigma .     # or: docker build -t enigma .
#   D=$PWD/deployment.json:/network/deployment.json:ro     # from `enigma ledger deploy`
#   podman run --rm -v enigma-n1:/data -v $D enigma --rpc http://chain:8545 \
#       --deployment /network/deployment.json --key-env NODE_ACCOUNT_KEY --bind 0.0.0.0 \
#       --advertise 203.0.113.7 --port 7001 --dht-port 4001 --metrics-port 9101 \
#       --job-ports 7100-7131 init                # writes /data/node.toml and /data/node.key
#   podman run -d -v enigma-n1:/data -v $D -e NODE_ACCOUNT_KEY -p 7001:7001 \
#       -p 4001:4001/udp -p 7100-7131:7100-7131 --stop-timeout 45 enigma   # from node.toml
#
# BASE: any Debian-like image with Python >= 3.11 and its venv module. The default is the
# official slim image; where no container registry is reachable, deploy/base-image.sh makes
# one from Debian's packages (--build-arg BASE=localhost/enigma-base). PYTHON: that base's
# interpreter (python3 is on PATH in both).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ARG PYTHON=python3
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Dependencies first, in a layer of their own: a change to Enigma's code then rebuilds
# only the last layer. The versions are constraints.txt's, the ones the tests passed with.
COPY pyproject.toml constraints.txt README.md /src/
RUN ${PYTHON} -m venv /opt/enigma \
 && /opt/enigma/bin/pip install -q -c /src/constraints.txt "pip==25.3" "setuptools==80.9.0" \
 && /opt/enigma/bin/python -c "import tomllib; d = tomllib.load(open('/src/pyproject.toml', 'rb')); print('\n'.join(d['project']['dependencies']))" > /src/requirements.txt \
 && /opt/enigma/bin/pip install -q -c /src/constraints.txt -r /src/requirements.txt
COPY src /src/src
RUN /opt/enigma/bin/pip install -q --no-deps --no-build-isolation -c /src/constraints.txt /src \
 && /opt/enigma/bin/python -c "from enigma.ledger import artifacts as a; [a.load(n) for n in a.CONTRACT_NAMES]" \
 && /opt/enigma/bin/enigma node --help > /dev/null \
 && cd /opt/enigma/lib/python3.*/site-packages \
 && rm -rf numpy/tests numpy/*/tests pandas/tests pyarrow/tests \
 && find scipy -depth -type d -name tests -exec rm -rf {} +

FROM ${BASE}
# The node never runs as root: uid 10001 owns /data and nothing else.
# /network: where a network's public files are mounted (deployment.json, read-only).
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin enigma \
 && mkdir -p /data /network && chown 10001:10001 /data /network && chmod 0700 /data
COPY --from=build /opt/enigma /opt/enigma
# ENIGMA_NODE_HOME: `enigma node` finds /data/node.toml there (app/node_config.py); every
# ENIGMA_NODE_<NAME> variable overrides that file, as compose.yaml does for addresses.
# NUMBA_CACHE_DIR: compiled kernels kept in the volume, so a restart does not compile again.
ENV PATH=/opt/enigma/bin:$PATH ENIGMA_NODE_HOME=/data NUMBA_CACHE_DIR=/data/cache/numba \
    PYTHONUNBUFFERED=1 LANG=C.UTF-8
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# service TCP, DHT UDP, metrics TCP (monitoring only), the job meshes (`job_ports`)
EXPOSE 7001/tcp 4001/udp 9101/tcp 7100-7131/tcp
# The node's own /health (200 while serving, 503 while stopping), on the port its settings
# say (`enigma node health` without importing the node: 0.1 s of CPU, not 2 s).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-m", "enigma.app.health"]
# SIGTERM: the node hands back running jobs after shutdown_grace (30 s); give the runtime
# more than that before it kills (docker stop -t 45, compose stop_grace_period: 45s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["enigma", "node"]
