from django.db import migrations, models


def count_waiting_refunds(apps, schema_editor):
    """Refunds already waiting for their donation: which campaign each names is in its raw body,
    in each provider's format; over-counting only costs a query per success, under-counting would
    strand a refund, so every counter starts at the number of waiting refunds of all campaigns."""
    PaymentEvent = apps.get_model("campaigns", "PaymentEvent")
    CampaignTotal = apps.get_model("campaigns", "CampaignTotal")
    waiting = PaymentEvent.objects.filter(status="deferred").count()
    if waiting:
        CampaignTotal.objects.update(deferred_events=waiting)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0005_donation_receipt_due"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaigntotal",
            name="deferred_events",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(count_waiting_refunds, migrations.RunPython.noop),
    ]
