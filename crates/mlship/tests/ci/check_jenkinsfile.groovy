// Checks a declarative Jenkinsfile offline: it must parse as Groovy, and its sections must nest
// as Jenkins's declarative pipeline allows (pipeline > agent, options, parameters, environment,
// stages > stage > when, environment, steps; post blocks). Step bodies are recorded, never run:
// each `sh` string is printed, one per line as JSON, so a test can run the steps itself.
// What this cannot check offline: step names and plugin parameters (no Jenkins is reachable).
// Usage: groovy check_jenkinsfile.groovy Jenkinsfile
import groovy.json.JsonOutput
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.Phases

def path = args[0]
def text = new File(path).text
def errors = []

// 1. Syntax, without running anything.
try {
    def cu = new CompilationUnit()
    cu.addSource(path, text)
    cu.compile(Phases.CONVERSION)
} catch (e) {
    System.err.println("${path}: syntax: ${e.message}")
    System.exit(1)
}

// 2. Structure: evaluate the file against a DSL that accepts only what each section allows.
class Section {
    String where
    Map<String, List<String>> allowed
    List<String> errors
    List<String> steps
    int stages = 0

    def methodMissing(String name, args) {
        def ok = allowed[where]
        if (ok != null && !ok.contains(name)) {
            errors << "${where}: '${name}' is not allowed here"
            return null
        }
        def closure = args ? args.find { it instanceof Closure } : null
        if (name == 'sh') {
            steps << args[0].toString()
            return null
        }
        if (name == 'stage') {
            stages++
            def inner = new Section(where: 'stage', allowed: allowed, errors: errors, steps: steps)
            closure?.delegate = inner
            closure?.resolveStrategy = Closure.DELEGATE_FIRST
            closure?.call()
            if (!inner.seen.any { it in ['steps', 'stages', 'parallel', 'matrix'] }) {
                errors << "stage(${args[0]}): needs one of steps/stages/parallel/matrix"
            }
            return null
        }
        seen << name
        if (closure != null && allowed.containsKey(name) && !(name in ['expression', 'options', 'parameters'])) {
            def inner = new Section(where: name, allowed: allowed, errors: errors, steps: steps)
            closure.delegate = inner
            closure.resolveStrategy = Closure.DELEGATE_FIRST
            closure.call()
            if (name == 'stages' && inner.stages == 0) {
                errors << "stages: no stage"
            }
        }
        return null
    }
    List<String> seen = []

    def propertyMissing(String name) { name }
    def propertyMissing(String name, value) {
        if (where != 'environment') {
            errors << "${where}: assignment to '${name}' outside environment"
        }
    }
}

def allowed = [
    pipeline   : ['agent', 'options', 'parameters', 'environment', 'stages', 'post', 'triggers', 'tools'],
    agent      : ['docker', 'label', 'any', 'none', 'node', 'dockerfile', 'kubernetes'],
    docker     : ['image', 'args', 'label', 'reuseNode', 'registryUrl', 'registryCredentialsId', 'alwaysPull'],
    stages     : ['stage'],
    stage      : ['agent', 'environment', 'when', 'steps', 'stages', 'parallel', 'matrix', 'post', 'options', 'input', 'tools'],
    when       : ['branch', 'expression', 'not', 'allOf', 'anyOf', 'environment', 'tag', 'changeRequest', 'beforeAgent'],
    not        : ['branch', 'expression', 'allOf', 'anyOf', 'environment', 'tag'],
    allOf      : ['branch', 'expression', 'not', 'anyOf', 'environment', 'tag'],
    anyOf      : ['branch', 'expression', 'not', 'allOf', 'environment', 'tag'],
    environment: ['credentials'],
    post       : ['always', 'success', 'failure', 'unstable', 'changed', 'fixed', 'regression', 'aborted', 'cleanup'],
    // Step names are not checked; options, parameters and expressions are not run either.
    steps      : null, options: null, parameters: null, expression: null,
]
def top = new Section(where: 'top', allowed: [top: ['pipeline']] + allowed, errors: errors, steps: [])
def binding = new Binding()
def shell = new GroovyShell(binding)
def script = shell.parse(text)
script.metaClass.methodMissing = { String name, a -> top.methodMissing(name, a) }
script.metaClass.propertyMissing = { String name -> name }
try {
    script.run()
} catch (e) {
    errors << "evaluation: ${e.class.simpleName}: ${e.message}"
}
if (!top.seen.contains('pipeline')) {
    errors << "no pipeline block"
}
if (errors) {
    errors.each { System.err.println("${path}: ${it}") }
    System.exit(1)
}
top.steps.each { println(JsonOutput.toJson(it)) }
System.err.println("ok: ${path}")
