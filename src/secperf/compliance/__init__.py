"""The compliance report: a period's security and performance record, for auditors.

``data`` collects it from the store, ``mapping`` holds the OWASP Top 10 and
CWE Top 25 tables, ``digest`` hashes it, ``render_html`` and ``render_pdf``
lay it out.
"""
