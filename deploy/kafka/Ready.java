// Exit 0 once a Kafka client can list topics on args[0], 1 otherwise (one attempt).
// start.sh runs it as a single-file program (java -cp 'lib/*' Ready.java HOST:PORT [CLIENT_ENV])
// when no Python with aiokafka is at hand. CLIENT_ENV: the client.env a secure start writes.
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class Ready {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        if (args.length > 1) {
            Map<String, String> env = new HashMap<>();
            for (String line : Files.readAllLines(Path.of(args[1]))) {
                int eq = line.indexOf('=');
                if (!line.startsWith("#") && eq > 0) env.put(line.substring(0, eq), line.substring(eq + 1));
            }
            String protocol = env.getOrDefault("JIGSAW_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT");
            props.put("security.protocol", protocol);
            if (protocol.contains("SSL")) {
                props.put("ssl.truststore.type", "PEM");
                props.put("ssl.truststore.location", env.get("JIGSAW_KAFKA_SSL_CA_FILE"));
            }
            if (protocol.startsWith("SASL_")) {
                String password = Files.readString(Path.of(env.get("JIGSAW_KAFKA_SASL_PASSWORD_FILE"))).strip();
                props.put("sasl.mechanism", env.get("JIGSAW_KAFKA_SASL_MECHANISM"));
                props.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required"
                        + " username=\"" + env.get("JIGSAW_KAFKA_SASL_USERNAME") + "\" password=\"" + password + "\";");
            }
        }
        try (Admin admin = Admin.create(props)) {
            admin.listTopics().names().get(6, TimeUnit.SECONDS);
            System.exit(0);
        } catch (Exception e) {
            System.err.println("not ready: " + e);
            System.exit(1);
        }
    }
}
