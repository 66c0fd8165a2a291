from django.db import models

from qifu.engine import contract

MONEY = {"max_digits": 20, "decimal_places": 6, "null": True, "blank": True}


class Township(models.Model):
    """A township (镇) or subdistrict (街道): the unit that serves entities and owns tasks."""

    code = models.CharField("代码", max_length=12, primary_key=True)
    name = models.CharField("名称", max_length=50, unique=True)
    kind = models.CharField("类型", max_length=12, choices=[("town", "镇"), ("subdistrict", "街道")])
    postcode = models.CharField("邮政编码", max_length=6, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "镇街"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Industry(models.Model):
    """GB/T 4754-2017: a section letter, a two-digit division or a four-digit class."""

    code = models.CharField("代码", max_length=5, primary_key=True)
    name = models.CharField("名称", max_length=100)

    class Meta:
        verbose_name = verbose_name_plural = "国民经济行业分类"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Entity(models.Model):
    """A market entity (市场主体) as the registry knows it; keyed by its credit code."""

    uscc = models.CharField("统一社会信用代码", max_length=18, primary_key=True)
    name = models.CharField("名称", max_length=200)
    entity_type = models.CharField("主体类型", max_length=12, choices=contract.ENTITY_TYPES)
    legal_form = models.CharField("企业类型", max_length=50, blank=True, null=True)
    industry_code = models.CharField("行业代码", max_length=5, blank=True, null=True)
    town = models.ForeignKey(Township, on_delete=models.PROTECT, verbose_name="所属镇街")
    address = models.CharField("住所", max_length=300, blank=True, null=True)
    registered_capital = models.DecimalField("注册资本(万元)", **MONEY)
    established_on = models.DateField("成立日期")
    status = models.CharField("登记状态", max_length=12, choices=contract.REGISTRY_STATUSES)
    legal_rep = models.CharField("法定代表人", max_length=100, blank=True, null=True)
    phone = models.CharField("联系电话", max_length=50, blank=True, null=True)
    email = models.CharField("电子邮箱", max_length=200, blank=True, null=True)
    imported_at = models.DateTimeField("导入时间")

    class Meta:
        verbose_name = verbose_name_plural = "市场主体"
        indexes = [models.Index(fields=["town", "entity_type"]), models.Index(fields=["status"]),
                   models.Index(fields=["address", "status"]),
                   # the analytical copy's stamp reads the latest off its end (analytics.stamp)
                   models.Index(fields=["imported_at"], name="entity_imported")]

    def __str__(self) -> str:
        return f"{self.name}（{self.uscc}）"


class Note(models.Model):
    """A staff member's note on an entity (a call made, a visit, a promise to file)."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="notes", db_column="uscc")
    author = models.ForeignKey("auth.User", on_delete=models.PROTECT, verbose_name="记录人")
    text = models.TextField("内容", max_length=2000)
    created_at = models.DateTimeField("时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "工作备注"
        ordering = ["-created_at"]
