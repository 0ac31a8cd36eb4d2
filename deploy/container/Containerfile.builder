# gpu_builder in a container (deploy/k8s runs it). From the checkout:
#   podman build -f deploy/container/Containerfile.builder -t vectorscale-gpu-builder:0.1.0 .
#   podman run --rm --device nvidia.com/gpu=all -p 50051:50051 vectorscale-gpu-builder:0.1.0
# (docker: --gpus all). The build stage compiles with the CUDA toolkit and packages the service
# with deploy/package.sh; the runtime stage installs that package, so its library dependencies
# come from the package's Depends. Both stages use the same Ubuntu release of the CUDA images.
ARG CUDA_IMAGE_VERSION=13.0.1
ARG UBUNTU=ubuntu24.04

FROM docker.io/nvidia/cuda:${CUDA_IMAGE_VERSION}-devel-${UBUNTU} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake dpkg-dev file pkg-config libgrpc++-dev libprotobuf-dev \
      protobuf-compiler protobuf-compiler-grpc \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# No PostgreSQL headers here, so only the vectorscale-gpu-builder package is built.
RUN deploy/package.sh /packages

FROM docker.io/nvidia/cuda:${CUDA_IMAGE_VERSION}-runtime-${UBUNTU}
# The user first, with a fixed uid (the Kubernetes securityContext names it); the package's
# postinst keeps an existing user.
RUN groupadd --system --gid 10001 vectorscale-builder \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin vectorscale-builder
COPY --from=build /packages/vectorscale-gpu-builder_*.deb /tmp/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /tmp/vectorscale-gpu-builder_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/*.deb
USER 10001:10001
EXPOSE 50051
# The port accepts connections. Kubernetes probes the gRPC health service itself (deploy/k8s).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/50051"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/vectorscale-gpu-builder"]
CMD ["--listen=0.0.0.0:50051"]
