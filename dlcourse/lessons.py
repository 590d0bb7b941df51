"""Use what an earlier lesson derived by importing it from that lesson, never by copying it.

    from dlcourse import lessons
    resnet = lessons.load("05.07")          # phase05-cnn/07-resnet.py as a module
    block = resnet.BasicBlock(64, 64)

A lesson file does nothing when imported: its work runs only under
`if __name__ == "__main__":`, so loading one defines its functions and classes and
runs its imports, nothing more. Lesson files have names like `07-resnet.py`, which
`import` cannot spell; `load` imports the file by its id from the manifest instead.

The rule: a lesson loads only lessons that come before it in course order (the test
suite reads every `lessons.load("...")` and checks it), so the course can be followed
front to back and a learner never meets code from a lesson they have not reached.
"""
import importlib.util
import re
import sys

from dlcourse import CourseError, syllabus

LOAD_CALL = re.compile(r"""lessons\.load\(\s*["']([^"']+)["']\s*\)""")  # what the test reads


def module_name(lesson):
    """The name a loaded lesson has in sys.modules, e.g. 'lesson_05_07'."""
    return "lesson_" + lesson.id.replace(".", "_")


def load(lesson_id):
    """Import the lesson `lesson_id` ('05.07', '03.capstone') and return it as a module.

    Loaded once per process; later calls return the same module.
    """
    lesson = syllabus.find(lesson_id)
    if lesson is None:
        raise CourseError(f"lessons.load: unknown lesson '{lesson_id}'")
    path = syllabus.REPO / lesson.path
    if not path.is_file():
        raise CourseError(f"lessons.load: lesson {lesson.id} is not written yet ({lesson.path})")
    name = module_name(lesson)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # before running it, as `import` does
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def loads_in(path):
    """The lesson ids that the file at `path` loads with lessons.load("...")."""
    with open(path, encoding="utf-8") as f:
        return LOAD_CALL.findall(f.read())
