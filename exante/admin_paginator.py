"""A paginator for admin changelists over tables too big to count.

``COUNT(*)`` over tens of millions of rows reads the whole table (PostgreSQL keeps no row
count), and the admin asks for it on every changelist page. This paginator never does:

* unfiltered, on PostgreSQL, it reads the planner's estimate (``pg_class.reltuples``,
  kept fresh by autovacuum's ANALYZE) when that estimate is above the cap;
* otherwise it counts at most ``count_cap + 1`` rows (``SELECT COUNT(*) FROM (… LIMIT n)``)
  and, past the cap, reports the cap and says so.

Either way ``count`` stays an int, so Django's changelist works unchanged; templates can
read ``count_is_estimate`` / ``count_is_capped`` to say "about" or "more than".
"""

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property


class LargeTablePaginator(Paginator):
    """Admin paginator whose count costs at most ``count_cap`` rows or one catalogue read."""

    #: Filtered views are counted exactly up to this many rows (100 pages at 100 per page).
    count_cap = 10_000

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.count_is_estimate = False
        self.count_is_capped = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return len(queryset)
        if not queryset.query.has_filters():
            estimate = self._estimated_rows(queryset)
            # A small or never-analysed table is cheap to count, and its estimate is the
            # least trustworthy, so only big tables get the estimate.
            if estimate is not None and estimate > self.count_cap:
                self.count_is_estimate = True
                return estimate
        counted = queryset.order_by().values("pk")[: self.count_cap + 1].count()
        if counted > self.count_cap:
            self.count_is_capped = True
            return self.count_cap
        return counted

    @staticmethod
    def _estimated_rows(queryset: QuerySet) -> int | None:
        """The planner's row estimate for the queryset's table, the sum of its partitions'
        if it is partitioned (autovacuum analyses partitions, never their parent); None off
        PostgreSQL or when no part was ever analysed (reltuples is -1 then, PostgreSQL 14+).
        """
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        table = connection.ops.quote_name(queryset.model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT sum(c.reltuples) FILTER (WHERE c.reltuples >= 0) "
                "FROM pg_partition_tree(%s::regclass) t JOIN pg_class c ON c.oid = t.relid "
                "WHERE t.isleaf",
                [table],
            )
            row = cursor.fetchone()
        if row is None or row[0] is None:
            return None
        return int(row[0])
