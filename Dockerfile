# One image for the three services; the command chooses the service:
#   python -m services.chat | services.registry | services.dispatcher
# (deploy/k8s sets it per Deployment; the default below is chat). One image because the
# services share one pyproject.toml, one dependency set and the shared/ package: three images
# would be three copies of the same layers, built and scanned three times.
#
#   docker build -t volano-events:dev .
#   docker run --rm -e NATS_URL=nats://host.docker.internal:4222 -p 8000:8000 volano-events:dev
#
# The install lines between "BEGIN install" and "END install" are run by
# tests/deploy/test_image_install.py in a clean virtual environment on every `make test`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
# BEGIN install
RUN python -m venv /opt/venv
RUN /opt/venv/bin/python -m pip install /src
# END install

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="volano-events" \
      org.opencontainers.image.description="VolanoChat-style chat with XML event callbacks on NATS JetStream"
# The application lives only in the virtual environment (a regular, non-editable install,
# byte-compiled at build time); the source tree is not copied.
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A fixed non-root user, matching runAsUser in deploy/k8s. The root filesystem can be
# read-only: nothing is written but to /tmp (an emptyDir in Kubernetes).
RUN groupadd --system --gid 10001 volano \
 && useradd --system --uid 10001 --gid volano --no-create-home --home-dir /nonexistent volano
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000 8080 8090
CMD ["python", "-m", "services.chat"]
