#!/usr/bin/env bash
# Makes sure the servers the tests and `make run` talk to answer: Redis on
# 127.0.0.1:6379, MariaDB on 127.0.0.1:3306 (root, no password, database
# test) and memcached on 127.0.0.1:11211 (-M: never evict, as the cache's
# tombstones need). Uses them when they already answer; otherwise installs
# (apt-get) and starts what is missing, so a plain Debian machine works too.
# The tests start private memcached processes of their own; the binary must
# be installed.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-benchmark >/dev/null || need_apt+=(redis-tools)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
command -v memcached >/dev/null || [ -x /usr/bin/memcached ] || need_apt+=(memcached)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "services: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
  echo "services: nothing answers on 127.0.0.1:$1" >&2
  return 1
}

if ! port_open 6379; then
  echo "services: starting redis-server on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379
fi

if ! port_open 11211; then
  echo "services: starting memcached -M on 127.0.0.1:11211"
  user=()
  [ "$(id -u)" -eq 0 ] && user=(-u memcache) && { id memcache >/dev/null 2>&1 || user=(-u root); }
  memcached -d -M -m 256 -l 127.0.0.1 -p 11211 -U 0 "${user[@]}"
  wait_port 11211
fi

if ! port_open 3306; then
  echo "services: starting mariadbd on 127.0.0.1:3306"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_port 3306
fi
mariadb -uroot -h127.0.0.1 -e 'CREATE DATABASE IF NOT EXISTS test' 2>/dev/null ||
  mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS test; ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket"
