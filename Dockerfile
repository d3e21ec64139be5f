FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# Pango and a font: WeasyPrint renders the French tax receipts' PDFs with them.
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY config ./config
COPY campaigns ./campaigns
RUN pip install --no-cache-dir .
COPY . .
# Build step only: no secrets exist at build time (DEBUG lets the settings load without them).
RUN DEBUG=true python manage.py collectstatic --noinput -v0
RUN useradd --create-home jauge && mkdir -p var && chown jauge var
USER jauge
EXPOSE 8000
CMD ["granian", "--interface", "wsgi", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--blocking-threads", "8", "--respawn-failed-workers", "--workers-kill-timeout", "10", "config.wsgi:application"]
