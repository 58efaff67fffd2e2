from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)
    price = models.IntegerField()

    class Meta:
        app_label = "django_site"
        db_table = "bench_item"
        managed = False
