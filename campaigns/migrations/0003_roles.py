"""The two back-office roles, as groups: Editors run campaigns, Finance handles the money."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

EDITORS = "Editors"
FINANCE = "Finance"

ROLE_PERMISSIONS = {
    EDITORS: [
        "add_campaign", "change_campaign", "view_campaign",
        "view_donation", "view_campaigntotal",
        "view_dashboard",
    ],
    FINANCE: [
        "view_campaign", "view_campaigntotal",
        "view_donation", "change_donation",
        "record_manual_donation", "refund_donation", "correct_donation", "erase_donor_data",
        "view_paymentevent", "retry_payment_event",
        "view_ledgerentry", "view_auditlog",
        "export_donations", "view_dashboard",
    ],
}


def _ensure_permissions(apps):
    # Permissions are normally created after `migrate`; a data migration needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def create_roles(apps, schema_editor):
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = Permission.objects.filter(content_type__app_label="campaigns", codename__in=codenames)
        missing = set(codenames) - set(permissions.values_list("codename", flat=True))
        if missing:
            raise RuntimeError(f"permissions missing for role {name}: {sorted(missing)}")
        group.permissions.add(*permissions)


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0002_audit_log"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
