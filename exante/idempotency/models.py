from django.db import models


class IdempotencyKey(models.Model):
    """One ``Idempotency-Key`` of one user and the answer its first request gave, replayed
    to every retry until ``expires_at``.

    Keyed by the user's uid rather than a foreign key: a request authenticated by token
    claims alone has the uid without a loaded user, and a key outlives nothing it names.
    """

    user_uid = models.UUIDField()
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.TextField()
    #: SHA-256 (hex) of method, path, query string and body.
    fingerprint = models.CharField(max_length=64)
    #: Null only inside the transaction of the request that holds the key: a row is
    #: committed together with its answer.
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.BinaryField(null=True, blank=True)
    location = models.TextField(blank=True, default="")
    etag = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_uid", "key"], name="idempotency_user_key_unique")
        ]
        verbose_name = "idempotency key"

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.key})"

    @property
    def is_complete(self) -> bool:
        return self.status_code is not None
