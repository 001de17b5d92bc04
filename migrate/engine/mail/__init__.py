"""Mailboxes from Exchange Online (Graph) into the organisation's IMAP server: scan, plan, copy, verify, sync.

scan reads each mapped mailbox's folder tree and, per folder, the message delta into the ledger (store/mail.py);
copy creates the folders (well-known ones mapped to the server's special-use folders) and APPENDs each
message's exact MIME with its flags and received time; verify compares counts per folder and every message's
digest; sync carries later changes by the stored delta links. Nothing here ever sends mail.
"""
