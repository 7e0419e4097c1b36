-- queries.sql: joins, aggregates, window functions, JSON, CTEs, sorting over make_db.sql.
.mode list
SELECT * FROM city_sales ORDER BY city;
SELECT count(*), round(avg(total), 4), max(day) FROM orders;
SELECT product, sum(qty) AS n FROM items GROUP BY product ORDER BY n DESC, product LIMIT 10;
SELECT c.name, count(o.id) AS n, round(sum(o.total), 2)
  FROM customers c LEFT JOIN orders o ON o.customer = c.id
  GROUP BY c.id ORDER BY n DESC, c.id LIMIT 15;
SELECT day, total, rank() OVER (PARTITION BY substr(day, 1, 7) ORDER BY total DESC) AS r
  FROM orders WHERE customer < 40 ORDER BY day, r LIMIT 40;
SELECT json_extract(meta, '$.tier') AS tier, count(*) FROM customers GROUP BY tier ORDER BY tier;
SELECT value, count(*) FROM customers, json_each(customers.meta, '$.tags')
  GROUP BY value ORDER BY count(*) DESC, value LIMIT 8;
WITH RECURSIVE fib(a, b, n) AS (SELECT 0, 1, 0 UNION ALL SELECT b, a + b, n + 1 FROM fib WHERE n < 60)
SELECT group_concat(a, ',') FROM fib;
SELECT length(group_concat(product || qty)) FROM items;
SELECT substr(group_concat(name, ';'), 1, 200) FROM (SELECT name FROM customers ORDER BY name DESC);
SELECT count(*) FROM items i JOIN orders o ON o.id = i.orderid JOIN customers c ON c.id = o.customer
  WHERE c.city = 'Lima' AND i.qty > 4;
SELECT printf('%.3f', sum(price * qty) / count(*)) FROM items;
