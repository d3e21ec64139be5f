from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0011_auditlog_actions"),
    ]

    operations = [
        migrations.CreateModel(
            name="Heartbeat",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=255, unique=True)),
                ("at", models.DateTimeField()),
                ("data", models.JSONField(blank=True, default=dict)),
            ],
            options={"verbose_name": "pulsation", "verbose_name_plural": "pulsations"},
        ),
    ]
