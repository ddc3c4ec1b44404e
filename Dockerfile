# ticktape's image (docker-compose.yml runs it as migrate, worker and app).
# The build steps are docker/steps.sh, which tests/e2e/test_image_steps.py runs
# too (no Docker engine on the machines that test this).
#
#   docker build -t ticktape .
#   docker run --rm ticktape --help

# -- builder: compiles the native module (C++17, pybind11) into a wheel ---------
FROM python:3.11-slim-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ make cmake \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN sh docker/steps.sh wheel /src /wheels

# -- runtime: the wheel and its dependencies in a virtualenv, no compiler --------
FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin ticktape
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY docker/steps.sh /usr/local/lib/ticktape/steps.sh
# (the wheel is 0.7 MB: copied rather than bind-mounted, so any builder builds this)
COPY --from=builder /wheels /tmp/wheels
RUN sh /usr/local/lib/ticktape/steps.sh install /tmp/wheels /opt/ticktape && rm -rf /tmp/wheels
ENV PATH=/opt/ticktape/bin:$PATH \
    TICKTAPE_HOME=/home/ticktape/data \
    PYTHONUNBUFFERED=1
USER ticktape
WORKDIR /home/ticktape
# (as the user it runs as: a backtest of generated ticks, no services needed)
RUN sh /usr/local/lib/ticktape/steps.sh check /opt/ticktape
ENTRYPOINT ["ticktape"]
CMD ["--help"]
