from django.db import migrations, models

# Each donation's balance is the sum of its ledger entries (portable SQL: PostgreSQL and SQLite).
BACKFILL = """
UPDATE campaigns_donation SET balance_minor = COALESCE(
    (SELECT SUM(delta_minor) FROM campaigns_ledgerentry WHERE donation_id = campaigns_donation.id), 0)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0006_campaigntotal_deferred_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="donation",
            name="balance_minor",
            field=models.BigIntegerField(default=0, editable=False, verbose_name="solde (centimes)"),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="donation",
            constraint=models.CheckConstraint(
                condition=models.Q(("balance_minor__gte", 0)), name="donation_balance_not_negative"
            ),
        ),
    ]
