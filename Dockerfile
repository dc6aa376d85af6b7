# One image for every consult service and the CLI; docker-compose.yml picks the service
# with `python -m services.common.runner <name>`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONSULT_DATA_DIR=/data

WORKDIR /app

# Dependencies first, read from pyproject.toml, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY . .
RUN pip install --no-deps . \
 && groupadd --system --gid 10001 consult \
 && useradd --system --uid 10001 --gid consult --home-dir /app --no-create-home consult \
 && mkdir -p /data \
 && chown consult:consult /data

USER consult

CMD ["consult", "--help"]
