# The bookstore's model, owned by a user as django-rest-hooks requires (`instance.user`).
from django.conf import settings
from django.db import models


class Book(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    title = models.CharField(max_length=255)
    author = models.CharField(max_length=255)
    isbn = models.CharField(max_length=32)
    pages = models.IntegerField()
    created_at = models.DateTimeField()
