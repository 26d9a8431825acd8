"""The office dashboard: HTML pages drawn from the read models, and the forms that post
through the command API (``forms.py``) with the signed-in user's own token.

signin     /login, /logout
board      /, /board/rows
jobs       /jobs/new, /customers/new, /jobs/{job_id} and the job's forms
planning   /schedule, /timesheets
billing    /invoices and its forms, /payments, /payments/statements, /ledger, /reports
recurring  /recurring, /recurring/new, /recurring/{recurrence_id}/end
retries    /messages and redeliver, /failures and try again
"""

from __future__ import annotations

from read_api.dashboard import billing, board, jobs, planning, recurring, retries, signin

ROUTERS = (signin.router, board.router, jobs.router, planning.router, billing.router, recurring.router, retries.router)
