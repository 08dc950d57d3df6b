"""Host variables are the JSON the ``tojson`` filter writes, value for value."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.inventory.render import _env, render_files
from provision.spec.loader import load_site

ROOT = Path(__file__).resolve().parents[2]

#: the host_vars layout with every value through ``tojson``: the reference the cached
#: encoder must match byte for byte
REFERENCE = """# {{ node.name }}: rendered by forge from {{ source_name }}.
ansible_host: {{ node.ssh_host | tojson }}
ansible_port: {{ node.ssh_port }}
forge_group: {{ node.group | tojson }}
forge_roles: {{ node.roles | list | tojson }}
forge_rack: {{ node.rack | tojson }}
forge_management_ip: {{ node.management_ip | tojson }}
forge_bmc_address: {{ node.bmc_address | tojson }}
forge_serial: {{ node.serial | tojson }}
forge_macs: {{ node.mac_map | tojson }}
forge_fabric_addresses: {{ fabric_addresses | tojson }}
"""


@pytest.mark.parametrize("spec", sorted((ROOT / "site-specs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_host_vars_match_the_tojson_reference(spec: Path) -> None:
    site = load_site(spec)
    ref = _env().from_string(REFERENCE)
    files = render_files(site, "")
    source = site.source.rsplit("/", 1)[-1]
    assert site.nodes
    for node in site.nodes:
        want = ref.render(node=node, source_name=source,
                          fabric_addresses=[dict(a.__dict__) for a in node.fabric_addresses])
        assert files[f"host_vars/{node.name}.yml"] == want


def test_only_plain_substitution_templates_skip_jinja() -> None:
    import jinja2

    from provision.inventory.render import _substitution

    env = jinja2.Environment(loader=jinja2.DictLoader({
        "plain": "a: {{ n.x }} {b} {{ j.k }}\n",
        "filtered": "a: {{ n.x | upper }}\n",
        "tagged": "{% if n.x %}a{% endif %}\n",
    }), keep_trailing_newline=True)

    class N:
        x = "v"

    values = {"n": N(), "j": {"k": 7}}
    for name in ("plain", "filtered", "tagged"):
        text = env.get_template(name).render(**values)
        fill = _substitution(env, name, values, text)
        assert (fill is not None) == (name == "plain"), name
        if fill is not None:
            assert fill(n=N(), j={"k": 8}) == "a: v {b} 8\n"
    assert _substitution(env, "plain", values, "something else") is None
