# Lamina: one image for the API (`serve`) and the workers (`worker`). No build step: TypeScript
# runs through tsx, a runtime dependency.
FROM node:20-bookworm-slim

# libvulkan1: the Vulkan loader Dawn (WebGPU) needs; the NVIDIA container runtime mounts the
# driver's ICD into the GPU worker (see docker-compose.yml). tini reaps sandboxed batch children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvulkan1 ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY pipelines ./pipelines
COPY workers ./workers
COPY kernels ./kernels
# The default encoder (lamina-vit-tiny-dino, trained, 11 MB) is committed in models/: without it
# every analysis that names no model would fail with "model not found".
COPY models ./models

# MALLOC_ARENA_MAX=2: decoding runs on several libuv and libvips threads, each with its own glibc
# malloc arena that keeps freed tile buffers; two arenas keep an analysis's RSS flat over the slide
# (docs/benchmarks.md, issue 3).
ENV NODE_ENV=production \
    LAMINA_DATA_DIR=/data \
    PORT=8080 \
    MALLOC_ARENA_MAX=2
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
EXPOSE 8080
USER node
ENTRYPOINT ["/usr/bin/tini", "--", "node", "bin/lamina.js"]
CMD ["serve"]
