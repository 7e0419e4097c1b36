-- budget.sql: under a small HM_LIMIT, a statement that needs far more memory fails with
-- SQLite's own "out of memory"; the shell goes on with the next one.
SELECT length(group_concat(hex(randomblob(2000)))) FROM items;
SELECT 'after', count(*) FROM items;
SELECT length(group_concat(hex(randomblob(2000)))) FROM items;
SELECT 'again', count(*) FROM customers;
