# The one `ledger` image: `ledger serve --services ledger|query` and `ledger project`.
# Multi-stage: the build stage has uv and compilers' leftovers; the final stage only the virtual
# environment, the code, and a non-root user. No shell tools are needed at run time.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_PROJECT_ENVIRONMENT=/opt/ledger/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
# Dependencies first (cached while only code changes), exactly as locked, without dev tools.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --python python3.11
COPY ownership ownership
COPY services services
RUN uv sync --frozen --no-dev --no-editable --python python3.11

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 ledger \
    && useradd --system --uid 10001 --gid ledger --home-dir /nonexistent --shell /usr/sbin/nologin ledger
COPY --from=build /opt/ledger/venv /opt/ledger/venv
ENV PATH=/opt/ledger/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 50051
ENTRYPOINT ["ledger"]
CMD ["serve"]
