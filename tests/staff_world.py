"""One world of back-office users for the admin, dashboard, export and GDPR tests:
superuser, editor, finance, staff without a group, anonymous."""

from __future__ import annotations

import importlib

from django.contrib.auth.models import Group, Permission, User

PASSWORD = "correct horse battery staple"
ROLES = importlib.import_module("campaigns.migrations.0003_roles")
STATEMENTS = importlib.import_module("campaigns.migrations.0010_statements")
MILESTONES = importlib.import_module("campaigns.migrations.0014_milestone")
TAX_RECEIPTS = importlib.import_module("campaigns.migrations.0016_tax_receipts")


def roles_ensure() -> dict[str, Group]:
    """The groups the data migration creates (transactional tests flush them: recreate)."""
    groups = {}
    for name, codenames in ROLES.ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        if name == ROLES.FINANCE:
            codenames = [*codenames, *STATEMENTS.FINANCE_STATEMENT_PERMISSIONS,
                         *MILESTONES.FINANCE_MILESTONE_PERMISSIONS, *TAX_RECEIPTS.FINANCE_TAX_RECEIPT_PERMISSIONS]
        if name == ROLES.EDITORS:
            codenames = [*codenames, *MILESTONES.EDITOR_MILESTONE_PERMISSIONS]
        group.permissions.set(Permission.objects.filter(content_type__app_label="campaigns", codename__in=codenames))
        groups[name] = group
    return groups


def staff_world() -> dict[str, User | None]:
    """Users without passwords (tests log them in with force_login): hashing four passwords
    would cost more than the tests themselves."""
    groups = roles_ensure()
    superuser = User.objects.create_superuser("root", "root@example.org", None)
    editor = User.objects.create_user("editor", is_staff=True)
    editor.groups.add(groups[ROLES.EDITORS])
    finance = User.objects.create_user("finance", is_staff=True)
    finance.groups.add(groups[ROLES.FINANCE])
    staff = User.objects.create_user("staff", is_staff=True)
    return {"superuser": superuser, "editor": editor, "finance": finance, "staff": staff, "anonymous": None}
