"""
One end-to-end run of django-rest-hooks (Debian's python3-django-rest-hooks), the original, with its
defaults: `HOOK_EVENTS = {'book.added': 'benchapp.Book.created'}`, the threaded client
(`HOOK_THREADING` True), the default serializer. K hooks of one user point at the bench's receiver;
N books are saved through the ORM, each save firing the event.

    python3 run_django_rest_hooks.py <sqlite file> <target base url> <N> <K>

Prints one JSON line when the first save starts ({"start": ms}) and one at exit, after the client's
non-daemon threads have sent everything ({"triggerEnd": ms, "cpuMs": process CPU}). Times are epoch
milliseconds, comparable with the receiver's clock on the same machine.
"""
import atexit
import datetime
import json
import os
import sys
import time

import django
from django.conf import settings

db_file, target, n, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

settings.configure(
    INSTALLED_APPS=['django.contrib.contenttypes', 'django.contrib.auth', 'rest_hooks', 'benchapp'],
    DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': db_file}},
    HOOK_EVENTS={'book.added': 'benchapp.Book.created'},
    USE_TZ=True,
    DEFAULT_AUTO_FIELD='django.db.models.AutoField',
)
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_hooks.models import Hook  # noqa: E402
from benchapp.models import Book  # noqa: E402

call_command('migrate', run_syncdb=True, verbosity=0)
user = User.objects.create(username='alice')
for i in range(k):
    Hook.objects.create(user=user, event='book.added', target=f'{target}/hook/{i}')


def report_exit():
    # atexit runs after the interpreter has joined the client's non-daemon threads: all is sent.
    times = os.times()
    print(json.dumps({'exit': time.time() * 1000, 'cpuMs': (times.user + times.system) * 1000}), flush=True)


atexit.register(report_exit)
print(json.dumps({'start': time.time() * 1000}), flush=True)
base = datetime.datetime(2023, 11, 14, tzinfo=datetime.timezone.utc)
for i in range(n):
    Book.objects.create(
        user=user,
        title='The Fellowship of the Ring',
        author='J. R. R. Tolkien',
        isbn='978-0-261-10235-4',
        pages=423,
        created_at=base + datetime.timedelta(milliseconds=i),
    )
print(json.dumps({'triggerEnd': time.time() * 1000}), flush=True)
