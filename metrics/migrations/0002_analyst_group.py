"""The "Analyst" group: staff who browse everything in the admin and correct metric values
and definitions, but manage no users, groups or API keys.

Permissions are normally created after ``migrate`` (post_migrate), so on a fresh database
they do not exist yet when this runs: each content type and permission is fetched or
created here, which is exactly what post_migrate would create later (it skips existing
ones).
"""

from django.db import migrations

GROUP_NAME = "Analyst"

#: (app_label, model) -> the actions the group may take.
ANALYST_PERMISSIONS = {
    ("entities", "organization"): ("view",),
    ("entities", "party"): ("view",),
    ("entities", "user"): ("view",),
    ("entities", "membership"): ("view",),
    ("metrics", "metricdefinition"): ("view", "add", "change"),
    ("metrics", "metricvalue"): ("view", "add", "change"),
}


def create_analyst_group(apps, schema_editor):
    db = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.using(db).get_or_create(name=GROUP_NAME)
    for (app_label, model_name), actions in ANALYST_PERMISSIONS.items():
        verbose_name = apps.get_model(app_label, model_name)._meta.verbose_name
        content_type, _ = ContentType.objects.using(db).get_or_create(
            app_label=app_label, model=model_name
        )
        for action in actions:
            permission, _ = Permission.objects.using(db).get_or_create(
                content_type=content_type,
                codename=f"{action}_{model_name}",
                defaults={"name": f"Can {action} {verbose_name}"},
            )
            group.permissions.add(permission)


def delete_analyst_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("entities", "0001_initial"),
        ("metrics", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_analyst_group, delete_analyst_group)]
