-- make_db.sql: a small real database: customers, orders, items, a view, an index, JSON.
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT, meta TEXT);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER REFERENCES customers(id),
                    day TEXT, total REAL);
CREATE TABLE items(id INTEGER PRIMARY KEY, orderid INTEGER REFERENCES orders(id),
                   product TEXT, qty INTEGER, price REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000)
INSERT INTO customers SELECT x, 'customer ' || x,
  CASE x % 5 WHEN 0 THEN 'Oslo' WHEN 1 THEN 'Rome' WHEN 2 THEN 'Lima' WHEN 3 THEN 'Pune' ELSE 'Kyiv' END,
  json_object('tier', x % 3, 'tags', json_array('t' || (x % 7), 't' || (x % 11)))
FROM c;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
INSERT INTO orders SELECT x, 1 + (x * 7919) % 2000, date('2024-01-01', '+' || (x % 366) || ' days'), 0 FROM c;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 60000)
INSERT INTO items SELECT x, 1 + (x * 104729) % 20000, 'product ' || (x % 97), 1 + x % 9,
  round(1 + (x % 500) / 7.0, 2) FROM c;
CREATE INDEX items_order ON items(orderid);
UPDATE orders SET total = (SELECT round(sum(qty * price), 2) FROM items WHERE orderid = orders.id);
CREATE INDEX orders_customer ON orders(customer);
CREATE VIEW city_sales AS
  SELECT c.city, count(DISTINCT o.id) AS orders, round(sum(o.total), 2) AS total
  FROM customers c JOIN orders o ON o.customer = c.id GROUP BY c.city;
