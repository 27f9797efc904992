#!/usr/bin/env python3
"""Counts the public surface of the gaussdiv library crate from rustdoc JSON:
free functions and inherent methods reachable from the crate root (the
measure of the structure issue: at most 60). Usage:

    RUSTC_BOOTSTRAP=1 cargo rustdoc -p gaussdiv --lib -- -Z unstable-options --output-format json
    python3 scripts/api_surface.py target/doc/gaussdiv.json
"""
import json
import sys

doc = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "target/doc/gaussdiv.json"))
index = doc["index"]
root = doc["root"]
free, methods = [], []


def visible(item):
    return item.get("visibility") == "public" and not any(
        "hidden" in str(a) for a in item.get("attrs", [])
    )


def walk(item_id, path, seen):
    if item_id in seen or str(item_id) not in index:
        return
    seen.add(item_id)
    item = index[str(item_id)]
    inner = item["inner"]
    kind = next(iter(inner))
    name = item.get("name") or ""
    if kind == "module":
        for child in inner["module"]["items"]:
            c = index.get(str(child))
            if c and visible(c):
                walk(child, path + [name], seen)
    elif kind == "use":
        target = inner["use"].get("id")
        if target is not None and not inner["use"].get("is_glob"):
            walk(target, path, seen)
    elif kind == "function":
        free.append("::".join(path + [name]))
    elif kind in ("struct", "enum", "union"):
        for impl_id in inner[kind].get("impls", []):
            impl = index.get(str(impl_id))
            if not impl:
                continue
            i = impl["inner"]["impl"]
            if i.get("trait") is not None or i.get("is_synthetic") or i.get("blanket_impl"):
                continue
            for m in i["items"]:
                mi = index.get(str(m))
                if mi and visible(mi) and "function" in mi["inner"]:
                    methods.append(f"{name}::{mi['name']}")


walk(root, [], set())
free, methods = sorted(set(free)), sorted(set(methods))
print(f"free functions: {len(free)}")
for f in free:
    print(f"  {f}")
print(f"inherent methods: {len(methods)}")
for m in methods:
    print(f"  {m}")
print(f"total: {len(free) + len(methods)}")
