FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
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
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--worker-class", "gthread", "--threads", "8"]
