# The image `cnai k8s install` runs (the operator) and the quickstart's workloads run:
# cnai with its Kubernetes, serving, training and Ray extras (so it can be a KubeRay
# node too), and examples/ at /app/examples.
#   docker build -t cnai:dev .            (see docs/kubernetes.md for kind)
# torch comes from PyTorch's CPU index so the image stays small; a GPU image installs
# the CUDA build of the same version instead.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu \
        ".[kubernetes,serving,train,ray]" \
    && useradd --uid 65532 --home-dir /var/lib/cnai --create-home cnai
COPY examples ./examples

USER 65532:65532
ENV CNAI_HOME=/var/lib/cnai
EXPOSE 8470
CMD ["cnai", "up", "--store=kubernetes", "--runtime=kubernetes", "--host=0.0.0.0"]
