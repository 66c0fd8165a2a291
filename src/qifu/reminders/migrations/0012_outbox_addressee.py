from django.db import migrations, models


def addressed(apps, schema_editor):
    """Messages stored before the field: those to a department named ``:dep`` in their key (a
    request's and a policy's notices), those to an expert had the purpose ``expert``."""
    OutboxMessage = apps.get_model("reminders", "OutboxMessage")
    OutboxMessage.objects.filter(key__contains=":dep").update(addressee="department")
    OutboxMessage.objects.filter(purpose="expert").update(addressee="expert")


class Migration(migrations.Migration):

    dependencies = [
        ('reminders', '0011_abnormal_purpose'),
    ]

    operations = [
        migrations.AddField(
            model_name='outboxmessage',
            name='addressee',
            field=models.CharField(choices=[('entity', '主体'), ('department', '承办部门'), ('expert', '专家')], db_default='entity', default='entity', max_length=10, verbose_name='收件方'),
        ),
        migrations.RunPython(addressed, migrations.RunPython.noop),
    ]
