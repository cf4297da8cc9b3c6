"""Office Open XML (.docx/.xlsx/.pptx): the pictures under */media/ and where each one sits."""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from urllib.parse import unquote

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from lookalike.imageio.documents.common import (
    _MEDIA_RE, _OFFICE_DOC, _R_NS, DocResult, Limits, _add_picture, _one_line, _Refuse, sniff_image,
)


def _unsafe_name(name: str) -> bool:
    return (
        name.startswith(("/", "\\"))
        or "\\" in name
        or "\x00" in name
        or re.match(r"^[A-Za-z]:", name) is not None
        or ".." in name.split("/")
    )


class _Package:
    """Read-only view of an OOXML zip: size-checked parts, relationships, safe XML."""

    def __init__(self, data: bytes, limits: Limits):
        self.limits = limits
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as e:
            raise _Refuse(f"damaged or truncated ZIP package: {_one_line(e)}") from None
        if len(infos) > limits.max_members:
            raise _Refuse(f"ZIP has {len(infos)} entries, above the {limits.max_members} limit (zip bomb?)")
        total = sum(i.file_size for i in infos)
        if total > limits.max_total_bytes:
            raise _Refuse(
                f"ZIP expands to {total / 2**20:.0f} MiB, above the {limits.max_total_bytes / 2**20:.0f} MiB limit (zip bomb?)"
            )
        self.unsafe: list[str] = []
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for i in infos:
            if i.file_size > limits.max_member_bytes:
                raise _Refuse(f"ZIP entry expands to {i.file_size / 2**20:.0f} MiB, above the per-entry limit (zip bomb?)")
            if i.file_size > limits.ratio_min_bytes and i.file_size > limits.max_ratio * max(i.compress_size, 1):
                raise _Refuse(
                    f"ZIP entry compressed {i.file_size / max(i.compress_size, 1):.0f}:1, above the "
                    f"{limits.max_ratio:.0f}:1 limit (zip bomb?)"
                )
            if _unsafe_name(i.filename):
                self.unsafe.append(i.filename)
            elif not i.is_dir():
                self.infos[i.filename] = i
        if "[Content_Types].xml" not in self.infos:
            raise _Refuse("ZIP file without [Content_Types].xml: not an Office Open XML document")
        self.rels: dict[str, dict[str, tuple[str, str]]] = {}  # source -> rId -> (target part, type)
        self.refs: dict[str, list[tuple[str, str]]] = defaultdict(list)  # target -> [(source, rId)]
        for name in self.infos:
            if name.endswith(".rels") and posixpath.basename(posixpath.dirname(name)) == "_rels":
                self._load_rels(name)

    def read(self, name: str) -> bytes:
        info = self.infos[name]
        with self.zip.open(info) as f:  # zipfile stops at the declared size and checks the CRC
            return f.read(self.limits.max_member_bytes + 1)

    def xml(self, name: str):
        """Parsed XML part, or None when missing or malformed; hostile XML refuses the document."""
        if name not in self.infos:
            return None
        try:
            return SafeET.fromstring(self.read(name), forbid_dtd=True)
        except DefusedXmlException:
            raise _Refuse(f"XML part {name} declares a DTD or entities (billion-laughs/external-entity attack?): refused") from None
        except (SafeET.ParseError, zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, ValueError):
            return None  # malformed part: locations fall back, pictures still count

    def _load_rels(self, rels_name: str) -> None:
        folder = posixpath.dirname(posixpath.dirname(rels_name))
        source = posixpath.join(folder, posixpath.basename(rels_name)[: -len(".rels")])  # "" for _rels/.rels
        root = self.xml(rels_name)
        if root is None:
            return
        table = self.rels.setdefault(source, {})
        base = posixpath.dirname(source)
        for rel in root:
            if not rel.tag.endswith("Relationship") or rel.get("TargetMode") == "External":
                continue
            rid, target = rel.get("Id"), rel.get("Target")
            if not rid or not target:
                continue
            target = unquote(target)
            full = target.lstrip("/") if target.startswith("/") else posixpath.join(base, target)
            full = posixpath.normpath(full)
            if full.startswith("..") or _unsafe_name(full):
                continue
            table[rid] = (full, rel.get("Type", ""))
            self.refs[full].append((source, rid))

    def main_part(self) -> str | None:
        for target, rtype in self.rels.get("", {}).values():
            if rtype.endswith(_OFFICE_DOC):
                return target
        return None


def _extract_ooxml(data: bytes, res: DocResult, limits: Limits) -> None:
    pkg = _Package(data, limits)
    for name in pkg.unsafe:
        res.skipped.append((name, "unsafe part name (absolute path, '..', backslash or drive letter): ignored"))
    media = sorted(n for n in pkg.infos if _MEDIA_RE.match(n))
    if not media:
        return
    where = _Locator(pkg).locate
    for name in media:
        try:
            blob = pkg.read(name)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, ValueError) as e:
            res.skipped.append((name, f"damaged or unreadable part: {_one_line(e)}"))
            continue
        kind = sniff_image(blob)
        ext = name.rsplit(".", 1)[-1].lower()
        if kind == "gzip":
            kind = {"emz": "emz", "wmz": "wmz", "svgz": "svg"}.get(ext)
        if kind is None:
            continue  # audio, video, fonts, OLE: not pictures
        _add_picture(res, name, blob, where(name), kind)



def _col_letters(col: int) -> str:
    s = ""
    col += 1
    while col:
        col, r = divmod(col - 1, 26)
        s = chr(65 + r) + s
    return s


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _Locator:
    """Turns a media part name into a human location by following relationships upwards."""

    def __init__(self, pkg: _Package):
        self.pkg = pkg
        self.main = pkg.main_part() or ""
        self.family = self.main.split("/", 1)[0] if self.main else ""
        self._paragraphs: dict[str, list[int]] | None = None
        self._anchors: dict[str, dict[str, str]] = {}
        self._sheet_names: dict[str, str] | None = None
        self._slides: dict[str, int] | None = None
        self._in_cell: dict[str, list[str]] | None = None

    def locate(self, part: str) -> str:
        places: list[str] = []
        for source, rid in self.pkg.refs.get(part, []):
            for p in self._describe(source, rid, 0):
                if p not in places:
                    places.append(p)
        if not places:
            return "unreferenced"
        more = f" (+{len(places) - 6} more)" if len(places) > 6 else ""
        return "; ".join(places[:6]) + more

    def _parents(self, part: str, depth: int, suffix: str = "") -> list[str]:
        out = []
        if depth < 4:
            for source, rid in self.pkg.refs.get(part, []):
                out += [p + suffix for p in self._describe(source, rid, depth + 1)]
        return out or [posixpath.basename(part) + suffix]

    def _describe(self, source: str, rid: str, depth: int) -> list[str]:
        base = posixpath.basename(source)
        if self.family == "word":
            if source == self.main:
                paras = self._word_paragraphs().get(rid)
                return [f"paragraph {n}" for n in paras] if paras else ["document"]
            for prefix, label in (("header", "header"), ("footer", "footer"), ("footnotes", "footnotes"),
                                  ("endnotes", "endnotes"), ("comments", "comments")):
                if base.startswith(prefix):
                    return [label]
            if "/glossary/" in source:
                return ["glossary"]
        elif self.family == "xl":
            names = self._sheets()
            if source in names:
                return [f"{names[source]} background"]
            if source.endswith(".vml"):
                return [f"{names.get(s, posixpath.basename(s))} header/footer" for s, _ in self.pkg.refs.get(source, [])] or ["header/footer"]
            if "/drawings/" in source and source.endswith(".xml"):
                cell = self._drawing_anchors(source).get(rid, "")
                sheets = [names.get(s, posixpath.basename(s)) for s, _ in self.pkg.refs.get(source, [])
                          if s in names] or self._parents(source, depth)
                return [f"{s}!{cell}" if cell else s for s in sheets]
            if source.endswith("richData/richValueRel.xml"):
                return self._in_cell_images().get(rid) or ["in cell"]
            if "/charts/" in source:
                return self._parents(source, depth, " (chart)")
        elif self.family == "ppt":
            slides = self._slide_numbers()
            if source in slides:
                return [f"slide {slides[source]}"]
            if "/notesSlides/" in source:
                return [f"notes of {p}" for p in self._parents(source, depth)]
            for part, label in (("/slideLayouts/", "slide layout"), ("/slideMasters/", "slide master"),
                                ("/notesMasters/", "notes master"), ("/handoutMasters/", "handout master")):
                if part in source:
                    return [label]
        if source == "":
            return ["package"]
        return self._parents(source, depth)

    # Word: paragraph number (1-based, document order) of every relationship id used in the body.
    def _word_paragraphs(self) -> dict[str, list[int]]:
        if self._paragraphs is None:
            self._paragraphs = defaultdict(list)
            root = self.pkg.xml(self.main)
            if root is not None:
                count = 0
                stack = [(root, 0)]
                while stack:  # explicit stack: deep XML must not hit the recursion limit
                    el, para = stack.pop()
                    if _local(el.tag) == "p":
                        count += 1
                        para = count
                    for key, value in el.attrib.items():
                        is_ref = key.startswith(_R_NS) or key.endswith("}relid")  # VML uses o:relid too
                        if is_ref and para and para not in self._paragraphs[value]:
                            self._paragraphs[value].append(para)
                    stack.extend((child, para) for child in reversed(el))
        return self._paragraphs

    # Excel
    def _sheets(self) -> dict[str, str]:
        if self._sheet_names is None:
            self._sheet_names = {}
            root = self.pkg.xml(self.main)
            rels = self.pkg.rels.get(self.main, {})
            if root is not None:
                for el in root.iter():
                    if _local(el.tag) == "sheet":
                        target = rels.get(el.get(_R_NS + "id", ""), ("", ""))[0]
                        if target:
                            self._sheet_names[target] = el.get("name", posixpath.basename(target))
        return self._sheet_names

    def _drawing_anchors(self, drawing: str) -> dict[str, str]:
        if drawing not in self._anchors:
            cells: dict[str, str] = {}
            root = self.pkg.xml(drawing)
            for anchor in (root if root is not None else []):
                cell = ""
                for el in anchor:
                    if _local(el.tag) == "from":
                        vals = {_local(c.tag): (c.text or "").strip() for c in el}
                        if vals.get("col", "").isdigit() and vals.get("row", "").isdigit():
                            cell = f"{_col_letters(int(vals['col']))}{int(vals['row']) + 1}"
                for el in anchor.iter():
                    for key, value in el.attrib.items():
                        if key.startswith(_R_NS):
                            cells.setdefault(value, cell)
            self._anchors[drawing] = cells
        return self._anchors[drawing]

    def _in_cell_images(self) -> dict[str, list[str]]:
        """rId of xl/richData/richValueRel.xml -> ["Sheet1!B3 (in cell)", ...]."""
        if self._in_cell is not None:
            return self._in_cell
        self._in_cell = defaultdict(list)
        folder = posixpath.dirname(self.main)
        rel_root = self.pkg.xml(f"{folder}/richData/richValueRel.xml")
        rv_root = self.pkg.xml(f"{folder}/richData/rdrichvalue.xml")
        if rel_root is None or rv_root is None:
            return self._in_cell
        rel_ids = [el.get(_R_NS + "id") for el in rel_root if _local(el.tag) == "rel"]
        rv_rel: list[int | None] = []  # rich value index -> index into rel_ids (first <v>: LocalImageIdentifier)
        for rv in rv_root:
            if _local(rv.tag) == "rv":
                vs = [v.text for v in rv if _local(v.tag) == "v"]
                rv_rel.append(int(vs[0]) if vs and (vs[0] or "").strip().isdigit() else None)
        vm_to_rv = self._value_metadata(folder)
        for sheet, name in self._sheets().items():
            for cell, vm in self._cells_with_vm(sheet):
                rv = vm_to_rv.get(vm, vm - 1)
                if 0 <= rv < len(rv_rel) and rv_rel[rv] is not None and 0 <= rv_rel[rv] < len(rel_ids):
                    label = f"{name}!{cell} (in cell)"
                    if label not in self._in_cell[rel_ids[rv_rel[rv]]]:
                        self._in_cell[rel_ids[rv_rel[rv]]].append(label)
        return self._in_cell

    def _value_metadata(self, folder: str) -> dict[int, int]:
        """vm (1-based) -> rich value index, via xl/metadata.xml."""
        root = self.pkg.xml(f"{folder}/metadata.xml")
        if root is None:
            return {}
        future: list[int] = []
        out: dict[int, int] = {}
        for el in root:
            if _local(el.tag) == "futureMetadata" and el.get("name") == "XLRICHVALUE":
                for bk in el:
                    rvb = next((x for x in bk.iter() if _local(x.tag) == "rvb"), None)
                    future.append(int(rvb.get("i", "-1")) if rvb is not None else -1)
        for el in root:
            if _local(el.tag) == "valueMetadata":
                for n, bk in enumerate((b for b in el if _local(b.tag) == "bk"), 1):
                    rc = next((x for x in bk if _local(x.tag) == "rc"), None)
                    v = int(rc.get("v", "-1")) if rc is not None else -1
                    if 0 <= v < len(future):
                        out[n] = future[v]
        return out

    def _cells_with_vm(self, sheet: str) -> Iterator[tuple[str, int]]:
        if sheet not in self.pkg.infos:
            return
        try:
            with self.pkg.zip.open(self.pkg.infos[sheet]) as f:
                for _, el in SafeET.iterparse(f, forbid_dtd=True):
                    if _local(el.tag) == "c":
                        vm = el.get("vm")
                        if vm and vm.isdigit():
                            yield el.get("r", "?"), int(vm)
                        el.clear()
        except DefusedXmlException:
            raise _Refuse(f"XML part {sheet} declares a DTD or entities (billion-laughs/external-entity attack?): refused") from None
        except (SafeET.ParseError, zipfile.BadZipFile, RuntimeError, OSError, EOFError, ValueError):
            return

    # PowerPoint: slide number from the order of presentation.xml's sldIdLst.
    def _slide_numbers(self) -> dict[str, int]:
        if self._slides is None:
            self._slides = {}
            root = self.pkg.xml(self.main)
            rels = self.pkg.rels.get(self.main, {})
            if root is not None:
                n = 0
                for el in root.iter():
                    if _local(el.tag) == "sldId":
                        n += 1
                        target = rels.get(el.get(_R_NS + "id", ""), ("", ""))[0]
                        if target:
                            self._slides[target] = n
        return self._slides


