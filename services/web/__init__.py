"""The web pages (issue 14): server-rendered pages for residents, the 1+2+X body, community workers
and auditors, in Simplified Chinese (default) and English. A client of the public API only."""
