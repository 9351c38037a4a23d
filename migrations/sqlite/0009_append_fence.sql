-- PostgreSQL only (the append fence); SQLite has one writer, so rowid order is commit order.
SELECT 1;
