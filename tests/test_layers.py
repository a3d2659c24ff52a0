"""The layer rule: api and core import no Qt, and no heavy library at module level."""

import subprocess
import sys
import textwrap

HEAVY = ["PySide6", "pyqtgraph", "superqt", "torch", "transformers", "umap", "captum", "sklearn"]


def test_core_imports_without_qt_or_heavy_libraries():
    script = textwrap.dedent(f"""
        import sys, importlib, pkgutil
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in {HEAVY!r}:
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, Block())
        import litdesk.api, litdesk.core
        for info in pkgutil.walk_packages(litdesk.core.__path__, 'litdesk.core.'):
            importlib.import_module(info.name)
        for info in pkgutil.walk_packages(litdesk.api.__path__, 'litdesk.api.'):
            importlib.import_module(info.name)
        print('ok')
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_ui_module_imports_no_heavy_ml_library():
    script = textwrap.dedent("""
        import sys
        import litdesk.ui.main_window, litdesk.cli
        heavy = [m for m in ('torch', 'transformers', 'umap', 'captum', 'sklearn')
                 if m in sys.modules]
        print(','.join(heavy))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
